"""The pool's storage format, in one place: what the selector writes, the scheduler and the
CLI read, and gc collects.

- `layout`: the keys under `.datapool/`, the `frames/` prefix, manifest names and numbering,
  the manifest JSON, and the reserved tag name `initial-tag`.
- `files`: a source file's identity (path, size, etag).
- `naming`: the frame naming rule.
- `state`: a segment's frames and vectors as read back.
- `cache_entry`: one embedding cache entry's bytes (the selector writes and reads them, the
  view reads them).
- `repository`: reading manifests and segments, and the commit's writes (commit rules 1-4).
- `gc`: deleting what no manifest references (commit rule 5).
"""

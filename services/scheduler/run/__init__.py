"""One run as stages: verify → list and diff → cache lookup → embed → select → render → commit → finish.

Each stage is a module that takes the run's `RunContext` (context.py) and fills its
`RunReport`; `services.scheduler.pipeline` calls them in order. The stages talk to the
embedders and the selector only through the Protocols in `interfaces`, which raise
domain errors: gRPC stays behind `services.scheduler.remotes`.
"""

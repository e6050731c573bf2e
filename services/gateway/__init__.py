"""REST gateway: the subset of the Lightly API that `lightly`'s ApiWorkflowClient calls for the
datapool workflow, served by calling the scheduler over gRPC (gRPC stays the source of truth)."""

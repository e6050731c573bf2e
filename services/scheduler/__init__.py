"""Scheduler service: datasets, datasources and runs; the only service a client talks to."""

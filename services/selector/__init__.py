"""Selector service: pool state in object storage, selection through selector_rs."""

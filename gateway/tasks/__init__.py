"""The task engine: records, kinds, leases, runners, and the in-process and Celery engines."""

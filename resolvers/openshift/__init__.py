"""OpenShift and Kubernetes clusters: namespaces, read through a cache and reconciled."""

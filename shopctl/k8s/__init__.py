"""Kubernetes: the stack description as kustomize manifests (deploy/kubernetes),
the checks they pass offline, and the commands that apply them to a cluster."""

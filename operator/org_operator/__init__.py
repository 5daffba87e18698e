"""org-operator: declarative organization users on Kubernetes."""

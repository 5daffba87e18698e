"""The reconciliation machinery shared by all kinds: work queue, cluster state, Events."""

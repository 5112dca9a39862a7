"""The RQ edge and the service layer: jobs, the event→handler table, handlers, reconciliation."""

"""Archive ⇄ record: ImagingStudy and Endpoint from archived studies, imaging orders to the
worklist, and patient reconciliation. The only module that sees both worlds."""

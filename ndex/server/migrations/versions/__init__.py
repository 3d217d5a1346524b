"""One module per schema change, oldest first (0001 is the schema every release before versioning wrote)."""

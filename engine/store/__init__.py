"""What the API reads and writes: accounts, contacts, tags, templates, senders, services,
user-service maps, campaigns and the quota ledger."""

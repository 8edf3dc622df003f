"""Pure rules and types: pause reasons, fairness, quota days, errors, ids, the commands protocol.
Imports nothing outside the standard library and itself."""

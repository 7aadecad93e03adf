"""The sub-processor register: safeguards, DPAs, change notices, objections, documents."""

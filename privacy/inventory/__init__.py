"""PII inventory: data subjects, the systems holding their data, and which system holds whom."""

"""The data-subject requests' blueprints: `api` (the account's REST API under /api/v1),
`opendsr` (the OpenDSR processor API), `form` (the public request form and its e-mailed
link) and `results` (the pages behind a results link). The account's pages are
privacy.dsr.pages."""

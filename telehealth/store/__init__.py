"""Everything that reads or writes the telehealth database, and nothing else does.

One module per aggregate (cases and photos, accounts, sessions, invites, analyses, reports, consults), each checking
access and writing the audit trail inside the same transaction as the query. The rest of telehealth receives the
plain records of `telehealth.records`, never a session or an ORM row. Schema changes live in `telehealth/store/migrations`.
"""

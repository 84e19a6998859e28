"""The aggregates (Family, Claim, SpotCheckSample, Ledger, PolicyVersion) and how their events
are sealed into hash chains (``base``). Pure: no database, file or clock (the append context
carries the time and the salt). Module and class paths are stored topics: keep them
(``topics`` lists them). May import only ``claimledger.ledger`` and eventsourcing's domain.
"""

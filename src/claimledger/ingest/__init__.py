"""claimledger.ingest"""

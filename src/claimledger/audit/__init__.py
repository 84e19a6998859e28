"""claimledger.audit"""

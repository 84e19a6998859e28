"""claimledger.ledger"""

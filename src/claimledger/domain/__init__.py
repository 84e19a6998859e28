"""claimledger.domain"""

"""claimledger.policy"""

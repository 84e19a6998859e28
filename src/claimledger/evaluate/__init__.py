"""claimledger.evaluate"""

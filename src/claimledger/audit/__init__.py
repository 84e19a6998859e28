"""What auditors and spot-checkers do with a ledger: claims (submit, validate, explain),
spot-check samples, evidence bundles (``bundle`` builds one from the ledger,
``bundle_check`` checks one offline from its bytes alone), checkpoint proofs, the HTML
report and the cohort view. May import the domain, evaluate, policy and ledger packages and
the application; ``bundle_check`` imports nothing that does I/O (tests/test_import_graph.py).
"""

"""Helpers shared by the test suites (importable as `support.*`: pyproject puts tests/ on the path).

`machine`: the one policy for a missing machine package (fail under CI=true, skip otherwise).
`processes`: finding and ending the processes a test run started. `plugin`: the session checks
(no skip under CI, no process left running). The other modules drive the product for the suites.
"""

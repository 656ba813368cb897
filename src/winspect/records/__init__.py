"""Parsers of pktmon's packet records (its real-time text and `etl2txt --hex` text) into
`winspect.v1` packets: pure functions over text, importing nothing of winspect but the API.

They live apart from the node and the client because both run them: the node, for a
request that wants typed packets (`PacketForm` PACKETS: grpcurl, scripts); the client,
for one that wants the records themselves (RECORDS: the CLI), which the node then only
cuts into batches, counts and forwards, so the parsing runs on the user's machine.
"""

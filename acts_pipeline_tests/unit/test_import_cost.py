"""What loading the definitions imports: every minute run is a fresh process that imports the code
location, so a library it never uses is CPU paid every minute. aiohttp and python-binance (with
dateparser, requests, websockets: 0.3 s of CPU) are imported when a run first builds an exchange
client (`BinanceExchange.get_client`); a minute run whose books all come from the recorder never
does."""

import subprocess
import sys

#: Loaded only by what talks to the exchange over HTTP (the client, the recorder's streams).
EXCHANGE_LIBRARIES = ("aiohttp", "binance", "dateparser", "websockets")

PROBE = """
import sys
import acts_pipeline.definitions
before = sorted(m for m in {libraries} if m in sys.modules)
from acts_pipeline.exchange import BinanceExchange, ExchangeClient, Transport
client = BinanceExchange(api_url="http://127.0.0.1:9", spool_dir={spool!r}).get_client()
assert isinstance(client, ExchangeClient), type(client)
assert isinstance(client.transport, Transport), type(client.transport)
after = sorted(m for m in {libraries} if m in sys.modules)
client.close()
print(before, after)
"""


def test_loading_the_definitions_does_not_import_the_exchange_libraries(tmp_path):
    probe = PROBE.format(libraries=EXCHANGE_LIBRARIES, spool=str(tmp_path / "spool"))
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = result.stdout.strip().splitlines()[-1].split("] [")
    assert before == "[", f"loading the definitions imported {before}]"
    # ... and they are there once a client is built: the laziness lost nothing
    assert all(repr(m) in after for m in ("aiohttp", "binance")), after

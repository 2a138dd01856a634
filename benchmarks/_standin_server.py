"""A stand-in for a user's server in ``benchmarks/capacity.py``: answers every request.

The hub only needs a server that answers HTTP at ``JUPYTERHUB_SERVICE_URL`` (its start-up
check, the proxy's route); this one costs ~10 MB instead of a lab's ~150 MB, so 50 of them
measure the hub and the proxy, not the machine's memory. Standard library only.
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

BODY = b'{"version": "stand-in"}'


class Answer(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


if __name__ == "__main__":
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    ThreadingHTTPServer((url.hostname, url.port), Answer).serve_forever()

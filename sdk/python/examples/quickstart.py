"""The README's "From Python" example, runnable.

    TOKEND_URL=http://127.0.0.1:8080 SECRET=shop_… python3 examples/quickstart.py

verifies SECRET, then sends one GET /orders with it through the guarded WSGI
app (wsgiref builds the request) and prints what each answered. The block
between the markers is the README's, line for line: a test checks it.
"""

from wsgiref.util import setup_testing_defaults

# README from here
import os, tokend

client = tokend.Client(os.environ["TOKEND_URL"])  # verifying needs no admin token
result = client.verify(os.environ["SECRET"], permissions=["orders:read"], ip="10.1.2.3")
print(result.valid, result.code)  # True VALID, or False and why: REVOKED, RATE_LIMITED…

def orders(environ, start_response):  # any WSGI app: Flask's app.wsgi_app, Django's
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + tokend.token_from(environ).name.encode()]

app = tokend.WSGIMiddleware(orders, client)  # 401, 403, 429, 503 as forward auth; cached 5 s
# README to here

if __name__ == "__main__":
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders", "REMOTE_ADDR": "10.1.2.3",
               "HTTP_AUTHORIZATION": "Bearer " + os.environ["SECRET"]}  # fmt: skip
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    print(statuses[0], body.decode())

"""The middleware inside real frameworks, when they are installed.

The SDK imports no framework; these tests only show it fits them, and skip
when Flask or Starlette is absent (the suite never needs them).
"""

import json
import unittest
from typing import Any

import tokend
from tests import server

try:
    import flask
except ImportError:  # pragma: no cover - depends on the machine
    flask = None  # type: ignore[assignment]

try:
    import starlette.applications
    import starlette.responses
    import starlette.routing
    import starlette.testclient
except ImportError:  # pragma: no cover
    starlette = None  # type: ignore[assignment]


def _token() -> tokend.IssuedToken:
    admin = server.admin_client()
    app = admin.create_app(server.name("framework"), permissions=["orders:read"])
    return admin.create_token(app["id"], server.name("fw"), access="read_only")


@unittest.skipIf(flask is None, "Flask is not installed")
class FlaskTest(unittest.TestCase):
    def test_flask_route_behind_the_wsgi_middleware(self) -> None:
        it = _token()
        app = flask.Flask(__name__)

        @app.get("/orders")
        def orders() -> Any:
            tok = flask.request.environ["tokend.token"]
            return {"name": tok.name}

        app.wsgi_app = tokend.WSGIMiddleware(app.wsgi_app, tokend.Client(server.shared().url))  # type: ignore[method-assign]
        c = app.test_client()
        r = c.get("/orders", headers={"Authorization": "Bearer " + it.secret})
        self.assertEqual((r.status_code, r.get_json()), (200, {"name": it.token["name"]}))
        r = c.post("/orders", headers={"Authorization": "Bearer " + it.secret})
        self.assertEqual(r.status_code, 403)
        r = c.get("/orders")
        self.assertEqual((r.status_code, r.headers["WWW-Authenticate"]), (401, 'Bearer realm="tokend"'))
        self.assertEqual(json.loads(r.data)["code"], "UNAUTHENTICATED")


@unittest.skipIf(starlette is None, "Starlette is not installed")
class StarletteTest(unittest.TestCase):
    def test_starlette_route_behind_the_asgi_middleware(self) -> None:
        it = _token()

        async def orders(request: Any) -> Any:
            return starlette.responses.JSONResponse({"name": request.state.tokend_token.name})

        app = starlette.applications.Starlette(routes=[starlette.routing.Route("/orders", orders, methods=["GET", "POST"])])
        app.add_middleware(tokend.ASGIMiddleware, client=tokend.Client(server.shared().url))
        with starlette.testclient.TestClient(app) as c:
            r = c.get("/orders", headers={"Authorization": "Bearer " + it.secret})
            self.assertEqual((r.status_code, r.json()), (200, {"name": it.token["name"]}))
            self.assertEqual(c.post("/orders", headers={"Authorization": "Bearer " + it.secret}).status_code, 403)
            self.assertEqual(c.get("/orders").status_code, 401)


if __name__ == "__main__":
    unittest.main()

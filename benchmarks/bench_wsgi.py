"""The app as gunicorn serves it in the HTTP benchmark, plus the one thing the
benchmark adds: a trivial endpoint (``/__bench__/trivial``, plain text, no
database, no template) whose throughput every page is divided by. Never
shipped: it lives here, not in ``marketplace``."""
from marketplace import create_app

app = create_app()


@app.get("/__bench__/trivial")
def trivial():
    return "ok", 200, {"Content-Type": "text/plain"}

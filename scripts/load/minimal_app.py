"""The reference for the throughput ratio: the smallest Flask app that renders a template, on any path."""
from pathlib import Path

from flask import Flask, render_template

app = Flask(__name__, template_folder=str(Path(__file__).resolve().parent / "minimal_templates"))


@app.get("/", defaults={"path": ""})
@app.get("/<path:path>")
def hello(path: str):
    return render_template("hello.html", path=path)

"""The reference for the throughput ratio: the smallest Flask app that renders a template, on any path (GET
or POST, so the multi-user mode's writes get an answer too)."""
from pathlib import Path

from flask import Flask, render_template

app = Flask(__name__, template_folder=str(Path(__file__).resolve().parent / "minimal_templates"))


@app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@app.route("/<path:path>", methods=["GET", "POST"])
def hello(path: str):
    return render_template("hello.html", path=path)

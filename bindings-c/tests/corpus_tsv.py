"""Writes the corpus of bad requests as lines the C test can read without a JSON parser.

    python3 corpus_tsv.py tests/corpus/bad_requests.json MODEL.gguf > bad_requests.tsv

First line: `service<TAB>spec` (the corpus's service spec with the model path). Then one line
per case: name, op, body, HTTP status, type, code, param (`-` for null), tab-separated. A
`body` of "$service" becomes the spec itself; `body_text` is sent as is.
"""

import json
import sys


def field(value: object) -> str:
    text = "-" if value is None else str(value)
    if "\t" in text or "\n" in text:
        raise SystemExit(f"corpus field cannot go on one TSV line: {text!r}")
    return text


def main() -> None:
    corpus_path, model = sys.argv[1], sys.argv[2]
    with open(corpus_path, encoding="utf-8") as f:
        corpus = json.load(f)
    spec = json.dumps({**corpus["service"], "model": model})
    print(f"service\t{field(spec)}")
    for case in corpus["cases"]:
        if case.get("body") == "$service":
            body = spec
        elif "body_text" in case:
            body = case["body_text"]
        else:
            body = json.dumps(case["body"])
        row = [case["name"], case["op"], body, case["status"], case["type"], case["code"]]
        print("\t".join(field(v) for v in [*row, case["param"]]))


if __name__ == "__main__":
    main()

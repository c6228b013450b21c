"""An agent loop over pybox's Python client, with OpenAI-style tool calls.

The model here is scripted (ScriptedAnalyst) so that the loop runs without
an LLM; to use a real one, replace model.next(messages) with a chat
completion call given tools=[tool.schema()] and messages. The task: the
user gives sales.csv; the agent computes revenue by region with pandas,
reads the numbers, plots them with matplotlib and gets the PNG back.

    PYBOX_URL=http://127.0.0.1:8080 PYBOX_API_KEY=pbx_... \\
      PYTHONPATH=clients/python python3 examples/agent/agent.py [--png out.png]

It prints a JSON report (totals, top region, PNG size) on stdout.
"""

import argparse
import json
import os
import sys

from pybox_client import Sandbox, openai_tool

HERE = os.path.dirname(os.path.abspath(__file__))

SUMMARY_CODE = """import pandas as pd
df = pd.read_csv("sales.csv")
df["revenue"] = df.units * df.price
totals = df.groupby("region").revenue.sum().sort_values(ascending=False)
print(totals.round(2).to_json())"""

PLOT_CODE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4))
totals.plot.bar(ax=ax, color="tab:blue")
ax.set_title("Revenue by region (top: %s)")
ax.set_ylabel("revenue")
fig.tight_layout()"""


class ScriptedAnalyst:
    """Emits the tool calls an LLM would, in the OpenAI chat format,
    reading the tool messages that came back."""

    def __init__(self):
        self.totals, self.top = None, None

    def next(self, messages):
        """The assistant's next message: tool calls, or a final answer."""
        tools = [m for m in messages if m["role"] == "tool"]
        if tools and tools[-1]["content"].startswith("error"):
            return {"role": "assistant", "content": "I could not finish: " + tools[-1]["content"]}
        if len(tools) == 0:
            return self._call("call_1", SUMMARY_CODE)
        if len(tools) == 1:
            out = tools[0]["content"]
            if "status: ok" not in out:
                return {"role": "assistant", "content": "The analysis failed:\n" + out}
            stdout = out.split("--- stdout ---\n", 1)[1].split("\n", 1)[0]
            self.totals = json.loads(stdout)
            self.top = max(self.totals, key=self.totals.get)
            return self._call("call_2", PLOT_CODE % self.top)
        return {"role": "assistant",
                "content": "%s earns most (%.2f). The chart is attached." % (self.top, self.totals[self.top])}

    @staticmethod
    def _call(call_id, code):
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "run_python", "arguments": json.dumps({"code": code})}}]}


def run(box, csv_text, model, max_turns=8):
    """The agent loop: returns (final answer, PNGs the tool produced)."""
    tool = openai_tool(box)  # one session for the conversation
    try:
        tool.session.upload("sales.csv", csv_text)  # the user's file
        messages = [{"role": "system", "content": "You analyse data with the run_python tool."},
                    {"role": "user", "content": "Here is sales.csv. Which region earns most? Plot revenue by region."}]
        schema = [tool.schema()]  # what a real LLM call would get as tools=
        assert schema[0]["function"]["name"] == "run_python"
        images = []
        for _ in range(max_turns):
            msg = model.next(messages)
            messages.append(msg)
            if not msg.get("tool_calls"):
                return msg["content"], images
            for call in msg["tool_calls"]:
                messages.append(tool.dispatch(call))
                images.extend(tool.images)
        raise RuntimeError("the model did not finish in %d turns" % max_turns)
    finally:
        tool.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=os.path.join(HERE, "sales.csv"))
    ap.add_argument("--png", help="write the chart here")
    a = ap.parse_args()
    with open(a.csv) as f:
        csv_text = f.read()
    model = ScriptedAnalyst()
    answer, images = run(Sandbox(), csv_text, model)
    if a.png and images:
        with open(a.png, "wb") as f:
            f.write(images[0])
    json.dump({"answer": answer, "totals": model.totals, "top": model.top,
               "pngs": len(images), "png_signature_ok": bool(images) and images[0][:8] == b"\x89PNG\r\n\x1a\n",
               "png_bytes": len(images[0]) if images else 0}, sys.stdout)
    print()
    return 0 if images else 1


if __name__ == "__main__":
    sys.exit(main())

"""pybox_client: the Python client of pybox's HTTP API (`pybox serve`).

    from pybox_client import Sandbox
    box = Sandbox("http://127.0.0.1:8080", api_key="pbx_...")
    print(box.execute("print(1 + 1)").stdout)
    with box.session() as s:
        s.upload("data.csv", "a,b\\n1,2\\n")
        s.run("import pandas as pd; df = pd.read_csv('data.csv')")
        print(s.run("df.a.sum()").text)

Standard library only. Errors the server reports raise PyboxError with the
problem's fields. openai_tool() is a ready function-calling tool;
pybox_client.langchain.make_tool() a LangChain one.
"""

from .client import PyboxError, Result, Sandbox, Session, format_result
from .tools import PythonTool, openai_tool

Client = Sandbox

__version__ = "0.1.0"
__all__ = ["Sandbox", "Client", "Session", "Result", "PyboxError", "PythonTool", "openai_tool", "format_result"]

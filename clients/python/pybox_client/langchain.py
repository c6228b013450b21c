"""A LangChain tool over pybox: `make_tool(sandbox)` returns a
langchain_core BaseTool named run_python. LangChain is imported only when
the tool is made, so that pybox_client works without it.

    from pybox_client import Sandbox
    from pybox_client.langchain import make_tool
    tool = make_tool(Sandbox(url, key))          # one session shared by the calls
    agent = create_react_agent(llm, [tool])
"""

from .tools import PythonTool

__all__ = ["make_tool"]

_INSTALL = ("pybox_client.langchain needs LangChain's core package, which is not installed: "
            "pip install langchain-core (or use pybox_client.openai_tool, which needs nothing)")


def _base_tool():
    try:
        from langchain_core.tools import BaseTool
    except ImportError as e:
        raise ImportError(_INSTALL) from e
    return BaseTool


def make_tool(sandbox, session=True, description=None):
    """A LangChain BaseTool that runs its `code` argument in pybox and
    returns the text for the model (see PythonTool.run). The tool's
    `pybox` attribute is the PythonTool: its images holds the last call's
    figures, and pybox.close() ends the session."""
    BaseTool = _base_tool()
    py = PythonTool(sandbox, session=session, description=description)

    class PyboxTool(BaseTool):
        name: str = py.name
        description: str = py.description()

        def _run(self, code: str, **kwargs) -> str:
            return py.run(code)

    tool = PyboxTool()
    # Outside the model's fields (BaseTool is a pydantic model).
    object.__setattr__(tool, "pybox", py)
    return tool

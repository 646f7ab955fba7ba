"""The desktop window. The only package that imports Qt: everything it shows comes from
the engine (`promptstudio.optimize`, `workflows`, `store`) through `state.AppState`."""

"""Analysis of hybrid reasoning traces: pure functions, traces in, DataFrames and plotly figures out."""

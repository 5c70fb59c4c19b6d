"""Statistics over stored runs, one module per concern: `rates` (Wilson intervals per cell),
`effects` (factor effects within strata, aliases, alignment faking; Newcombe intervals
and Fisher p between runs; Holm), `strata` (the stratified difference), `variants` (rates
across surface variants), `hypotheses` (confirmatory and exploratory), `power`, `monitor`,
`published`, and the outputs `figures`, `headline`, `report`, `export`. Import the module
you need: nothing is loaded here, so
a run that prints only its rates table never loads pandas, SciPy or matplotlib."""

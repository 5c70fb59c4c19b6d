from amlab.cli import main

main()

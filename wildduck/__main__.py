from wildduck.cli import main

main()

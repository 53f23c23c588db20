from gun.cli.main import main

main()

from loopline.cli.main import main

main()

from sopflow.web.serve import main

main()

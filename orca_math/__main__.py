from orca_math.cli import console_main

console_main()

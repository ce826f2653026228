from sandboxes.paypal.app import main

main()

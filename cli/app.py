def main():
    import scannlite.store, scannlite.plugin
    print("ok", scannlite.store.__file__)

using System;

namespace PsIpc.FaultPeer
{
    internal static class Program
    {
        // drive <out.json> <trials> <parallel> <run-prefix> <transport:role,...>   or   peer ...
        private static int Main(string[] args)
        {
            if (args.Length > 0 && args[0] == "peer") return Peer.Run(args);
            if (args.Length == 7 && args[0] == "drive") return Driver.Run(args);
            Console.Error.WriteLine("usage: drive <out.json> <trials> <parallel> <run-prefix> <work-dir> <transport:role,...> | peer <transport> <role> <address> <seed>");
            return 2;
        }
    }
}

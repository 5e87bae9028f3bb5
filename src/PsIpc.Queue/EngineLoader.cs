using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PsIpc.Queue
{
    /// <summary>
    /// Loads the RabbitMQ engine (PsIpc.Amqp and RabbitMQ.Client with its dependencies) from the module's
    /// bin/amqp/&lt;tfm&gt;/ folder the first time a queue cmdlet needs it, never at import:
    ///   pwsh 7: when the default load context cannot find PsIpc.Amqp (this assembly references it), the
    ///     Resolving handler loads it into <see cref="AmqpLoadContext"/>, which loads RabbitMQ.Client and the
    ///     rest of the folder too, so another module's RabbitMQ.Client (in the default context) is never used
    ///     and never disturbed. What is not in the folder, PsIpc.Transport above all, comes from the default
    ///     context: the engine's channels are the IpcChannel type the module knows.
    ///   Windows PowerShell 5.1: AppDomain.AssemblyResolve answers for the files of the netstandard2.0 folder,
    ///     whatever version was asked for (the binding redirects a .config file would otherwise need).
    /// </summary>
    public sealed class EngineLoader : IModuleAssemblyInitializer, IModuleAssemblyCleanup
    {
        internal const string EngineAssembly = "PsIpc.Amqp";

        private static readonly object s_gate = new object();
        private static bool s_hooked;

        internal static bool IsCoreClr { get; } =
            !RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.OrdinalIgnoreCase);

        /// <summary>bin/amqp/net8.0 (pwsh 7) or bin/amqp/netstandard2.0 (Windows PowerShell 5.1).</summary>
        internal static string EngineDirectory { get; } = Path.Combine(
            Path.GetDirectoryName(typeof(EngineLoader).Assembly.Location) ?? ".", "amqp", IsCoreClr ? "net8.0" : "netstandard2.0");

        public void OnImport() => Hook();

        public void OnRemove(PSModuleInfo psModuleInfo) => Unhook();

        internal static void Hook()
        {
            lock (s_gate)
            {
                if (s_hooked) return;
                if (IsCoreClr) CoreHook(true);
                else AppDomain.CurrentDomain.AssemblyResolve += OnAssemblyResolve;
                s_hooked = true;
            }
        }

        internal static void Unhook()
        {
            lock (s_gate)
            {
                if (!s_hooked) return;
                if (IsCoreClr) CoreHook(false);
                else AppDomain.CurrentDomain.AssemblyResolve -= OnAssemblyResolve;
                s_hooked = false;
            }
        }

        /// <summary>A method of its own, so that .NET Framework never compiles code that names AssemblyLoadContext.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void CoreHook(bool add)
        {
            if (add) System.Runtime.Loader.AssemblyLoadContext.Default.Resolving += AmqpLoadContext.ResolveEngine;
            else System.Runtime.Loader.AssemblyLoadContext.Default.Resolving -= AmqpLoadContext.ResolveEngine;
        }

        private static Assembly? OnAssemblyResolve(object? sender, ResolveEventArgs args)
        {
            string? name = new AssemblyName(args.Name).Name;
            if (name == null) return null;
            string path = Path.Combine(EngineDirectory, name + ".dll");
            if (!File.Exists(path)) return null;
            foreach (Assembly loaded in AppDomain.CurrentDomain.GetAssemblies())
            {
                if (!loaded.IsDynamic && string.Equals(loaded.Location, path, StringComparison.OrdinalIgnoreCase)) return loaded;
            }
            return Assembly.LoadFrom(path);
        }
    }
}

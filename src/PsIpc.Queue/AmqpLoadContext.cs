using System;
using System.IO;
using System.Reflection;
using System.Runtime.Loader;

namespace PsIpc.Queue
{
    /// <summary>
    /// pwsh 7 only (see <see cref="EngineLoader"/>): the load context of PsIpc.Amqp, RabbitMQ.Client and
    /// their dependencies, all from bin/amqp/net8.0/. Anything else (the runtime, PsIpc.Transport) comes from
    /// the default context.
    /// </summary>
    internal sealed class AmqpLoadContext : AssemblyLoadContext
    {
        private static readonly object s_gate = new object();
        private static AmqpLoadContext? s_instance;

        private readonly string _directory;

        private AmqpLoadContext(string directory)
        {
            _directory = directory;
        }

        public static AmqpLoadContext Instance
        {
            get
            {
                lock (s_gate) return s_instance ??= new AmqpLoadContext(EngineLoader.EngineDirectory);
            }
        }

        /// <summary>The default context's Resolving handler: answers for the engine assembly only.</summary>
        public static Assembly? ResolveEngine(AssemblyLoadContext context, AssemblyName name)
        {
            if (!string.Equals(name.Name, EngineLoader.EngineAssembly, StringComparison.Ordinal)) return null;
            return Instance.LoadFromAssemblyName(name);
        }

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            string path = Path.Combine(_directory, assemblyName.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }
    }
}

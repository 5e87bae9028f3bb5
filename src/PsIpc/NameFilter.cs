using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PsIpc
{
    /// <summary>
    /// What every Get- command of the module does with its -Name: no names lists everything; each name is a
    /// wildcard pattern; a plain name that matches nothing is a not-found error (a pattern that matches
    /// nothing is quiet, as with Get-Process).
    /// </summary>
    internal static class NameFilter
    {
        public static void WriteMatches<T>(Cmdlet cmdlet, IReadOnlyCollection<T> items, string[] names, WildcardOptions options,
            Func<T, WildcardPattern, bool> isMatch, Func<string, ErrorRecord> notFound)
        {
            if (names == null)
            {
                cmdlet.WriteObject(items, enumerateCollection: true);
                return;
            }
            foreach (string name in names)
            {
                var pattern = WildcardPattern.Get(name, options);
                var matches = items.Where(item => isMatch(item, pattern)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    cmdlet.WriteError(notFound(name));
                }
                cmdlet.WriteObject(matches, enumerateCollection: true);
            }
        }
    }
}

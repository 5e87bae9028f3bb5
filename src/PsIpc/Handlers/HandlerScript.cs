using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text;

namespace PsIpc.Handlers
{
    /// <summary>
    /// A -ScriptBlock handler as its worker runspaces get it: its text, with every <c>$using:name</c> turned into a
    /// variable of the worker runspace (<c>$PsIpcUsing_name</c>) whose value was read in the caller's session when
    /// the handler was attached, as Start-ThreadJob and ForEach-Object -Parallel do (a reference, not a copy: the
    /// handlers of all runspaces see the same object, so a shared object must be thread-safe).
    /// </summary>
    internal sealed class HandlerScript
    {
        private const string UsingPrefix = "PsIpcUsing_";

        private HandlerScript(string text, IReadOnlyDictionary<string, object?> usingValues)
        {
            Text = text;
            UsingValues = usingValues;
        }

        /// <summary>The script block's text to create in each worker runspace.</summary>
        public string Text { get; }

        /// <summary>The variables to set in each worker runspace before the first message.</summary>
        public IReadOnlyDictionary<string, object?> UsingValues { get; }

        /// <summary>Reads the <c>$using:</c> values of <paramref name="scriptBlock"/> from <paramref name="callerState"/>.</summary>
        /// <exception cref="ArgumentException">A <c>$using:</c> expression that is not a plain variable.</exception>
        public static HandlerScript Prepare(ScriptBlock scriptBlock, SessionState? callerState)
        {
            Ast root = scriptBlock.Ast;
            var usings = root.FindAll(a => a is UsingExpressionAst, searchNestedScriptBlocks: true).Cast<UsingExpressionAst>()
                .OrderByDescending(u => u.Extent.StartOffset).ToList();
            if (usings.Count == 0) return new HandlerScript(scriptBlock.ToString(), new Dictionary<string, object?>());
            var values = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
            var text = new StringBuilder(root.Extent.Text);
            int origin = root.Extent.StartOffset;
            foreach (UsingExpressionAst use in usings)
            {
                // $using:name, or $using:name.Member / $using:name[0]: the variable is replaced, what follows it stays.
                var variable = (use.SubExpression as VariableExpressionAst)
                    ?? use.SubExpression.Find(a => a is VariableExpressionAst, searchNestedScriptBlocks: false) as VariableExpressionAst;
                if (variable == null)
                {
                    throw new ArgumentException($"The handler uses '{use.Extent.Text}'; $using: takes a variable ($using:name).");
                }
                string name = variable.VariablePath.UserPath;
                if (name.IndexOf(':') >= 0) name = name.Substring(name.LastIndexOf(':') + 1); // $using:script:x reads x
                string local = UsingPrefix + name;
                if (!values.ContainsKey(local)) values[local] = callerState?.PSVariable.GetValue(name);
                text.Remove(variable.Extent.StartOffset - origin, variable.Extent.EndOffset - variable.Extent.StartOffset);
                text.Insert(variable.Extent.StartOffset - origin, "${" + local + "}");
            }
            string body = text.ToString().Trim();
            // The AST of a script block literal includes its braces; the worker creates the script block from its body.
            if (body.Length >= 2 && body[0] == '{' && body[body.Length - 1] == '}') body = body.Substring(1, body.Length - 2);
            return new HandlerScript(body, values);
        }
    }
}
